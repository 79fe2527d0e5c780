#!/bin/bash
# make-config.sh TREE: the demo tree's .config (what `--kernel .` builds from): 6.12's
# x86_64_defconfig without what a 2-vCPU qemu guest with a virtio disk does not use
# (networking but AF_UNIX, graphics, sound, USB, SCSI/ATA, NVMe, power management but
# ACPI, security modules, ...), so a first build takes minutes, not an hour, on 2 busy
# cores. The fragment the workloads need is merged on top by thpbench (docs/kernels.md).
# tree.defconfig beside this script is the result, as `make savedefconfig` writes it.
set -eu
tree=$(realpath "$1") o=$(mktemp -d)
rm -f "$tree/.config"  # make O= refuses a source tree that has one
make -s -C "$tree" O="$o" ARCH=x86 x86_64_defconfig
"$tree"/scripts/config --file "$o/.config" \
 -d INET -d WIRELESS -d WLAN -d NETDEVICES -d ETHERNET -d DRM -d FB -d SOUND -d SND -d USB_SUPPORT -d HID -d HID_SUPPORT \
 -d INPUT_MOUSE -d INPUT_JOYSTICK -d INPUT_TABLET -d INPUT_TOUCHSCREEN -d AGP -d ATA -d SCSI -d MD -d BLK_DEV_DM \
 -d CPU_FREQ -d HIBERNATION -d SUSPEND -d SECURITY -d SECURITY_SELINUX -d AUDIT -d NETWORK_FILESYSTEMS -d ISO9660_FS \
 -d VFAT_FS -d MSDOS_FS -d PCCARD -d I2C -d HWMON -d THERMAL -d WATCHDOG -d KEXEC -d CRASH_DUMP -d RFKILL -d CFG80211 \
 -d MAC80211 -d NETFILTER -d VIRTUALIZATION -d INTEL_IOMMU -d AMD_IOMMU -d IOMMU_SUPPORT -d LOGO -d QUOTA -d AUTOFS_FS \
 -d BT -d PM -d CPU_IDLE_GOV_HALTPOLL -d HALTPOLL_CPUIDLE -d DEBUG_INFO -d MICROCODE -d EFI -d DMA_ENGINE -d NVRAM -d HW_RANDOM \
 -d TCG_TPM -d RTC_CLASS -d NEW_LEDS -d POWER_SUPPLY -d MEDIA_SUPPORT -d BLK_DEV_SR -d CDROM -d BLK_DEV_LOOP -d NETCONSOLE \
 -d FW_LOADER -d KEYS -d CRYPTO_USER -d X86_MCE -d PERF_EVENTS_INTEL_UNCORE -d PERF_EVENTS_INTEL_RAPL -d PERF_EVENTS_INTEL_CSTATE -d PERF_EVENTS_AMD_UNCORE \
 -d X86_X2APIC_NO -d CHROME_PLATFORMS -d X86_PLATFORM_DEVICES -d SURFACE_PLATFORMS -d MAILBOX -d PTP_1588_CLOCK -d PPS \
 -d SERIAL_8250_EXTENDED -d GPIOLIB -d SPI -d MMC -d MEMSTICK -d ACCESSIBILITY -d INFINIBAND -d EDAC -d VHOST_MENU \
 -d STAGING -d VIRT_DRIVERS -d NFC -d CAN -d PROFILING -d BLK_DEV_NVME -d NVME_CORE -d MTD -d PARPORT -d USB4 \
 -d IPC_NS -d NET_NS -d BLK_DEV_BSG -d NET_9P -d 9P_FS -d PSTORE -d BPF_SYSCALL -d BPF_JIT -d XEN -d PARAVIRT_SPINLOCKS \
 -e VIRTIO_PCI -e VIRTIO_BLK -e VIRTIO_CONSOLE -e UNIX -e SERIAL_8250 -e SERIAL_8250_CONSOLE -e KPROBES
make -s -C "$tree" O="$o" ARCH=x86 olddefconfig
cp "$o/.config" "$tree/.config"
rm -rf "$o"
