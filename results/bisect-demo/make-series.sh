#!/bin/bash
# make-series.sh TREE: on a git tree of Debian's linux-source-6.12 (one commit), adds the
# demo's 8 commits: 7 harmless (Documentation and comments) and, as the 5th, one that
# makes GUP-fast always fall back to the mmap_lock slow path (docs/bisect.md).
set -eu
cd "$1"
c() { git -c user.name=thpbench-demo -c user.email=demo@thpbench.invalid commit -qam "$1"; }
note() { printf '\n.. thpbench bisect demo: %s\n' "$2" >> "$1"; }
comment() { # FILE LINE TEXT: a C comment line above LINE (a line that exists as written)
  python3 - "$@" <<'PY'
import sys
path, line, text = sys.argv[1:4]
s = open(path).read()
assert line in s, (path, line)
s = s.replace(line, "/* thpbench bisect demo: %s */\n%s" % (text, line), 1)
open(path, "w").write(s)
PY
}
note Documentation/admin-guide/mm/transhuge.rst "a harmless documentation change (1)"
c "Documentation: transhuge: demo note 1 (harmless)"
comment mm/gup.c "static int gup_fast_fallback(unsigned long start, unsigned long nr_pages," "a harmless comment (2)"
c "mm/gup: demo comment 2 (harmless)"
note Documentation/core-api/pin_user_pages.rst "a harmless documentation change (3)"
c "Documentation: pin_user_pages: demo note 3 (harmless)"
comment mm/huge_memory.c "static void __split_huge_page(struct page *page, struct list_head *list," "a harmless comment (4)"
c "mm/huge_memory: demo comment 4 (harmless)"
python3 - <<'PY'
path = "mm/gup.c"
s = open(path).read()
old = "\tnr_pinned = gup_fast(start, end, gup_flags, pages);\n\tif (nr_pinned == nr_pages || gup_flags & FOLL_FAST_ONLY)"
new = ("\t/* Planted regression: only fast-only callers walk locklessly; all others take\n"
       "\t * mmap_lock on the slow path. */\n"
       "\tnr_pinned = (gup_flags & FOLL_FAST_ONLY) ? gup_fast(start, end, gup_flags, pages) : 0;\n"
       "\tif (nr_pinned == nr_pages || gup_flags & FOLL_FAST_ONLY)")
assert s.count(old) == 1
open(path, "w").write(s.replace(old, new))
PY
c "mm/gup: GUP-fast falls back to the slow path always (the planted regression, 5)"
comment mm/gup.c "static int gup_fast_fallback(unsigned long start, unsigned long nr_pages," "a harmless comment (6)"
c "mm/gup: demo comment 6 (harmless)"
note Documentation/mm/transhuge.rst "a harmless documentation change (7)"
c "Documentation: mm/transhuge: demo note 7 (harmless)"
comment mm/memory.c "vm_fault_t handle_mm_fault(struct vm_area_struct *vma, unsigned long address," "a harmless comment (8)"
c "mm/memory: demo comment 8 (harmless)"
git log --oneline
