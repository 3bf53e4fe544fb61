# doxygen-errors.awk - lets Doxygen document the error codes one by one.
#
# hmb/errors.h defines its codes once, in the X-macro HMB_ERRNO_MAP(X) of
# X(name, value, message) entries, and builds the enum from it. Doxygen
# would see undocumented enum values (so `#HMB_ETIMEDOUT` in a comment
# could not link anywhere). Run as the INPUT_FILTER of errors.h only
# (FILTER_PATTERNS in Doxyfile.in), this script replaces the line that
# expands the map inside the enum by the same values written out, each
# documented with its own message:
#   HMB_ETIMEDOUT = -3, /**< timed out waiting for budget */ ...
# all on that one line, so line numbers in warnings still match the header.
# A header without that line passes through unchanged.
{
  line = $0
  if (line ~ /^#[ \t]*define[ \t]+HMB_ERRNO_MAP[ \t]*\(/)
    inmap = 1
  if (inmap) {
    text = line
    sub(/\\[ \t]*$/, "", text)
    map = map " " text
    if (line !~ /\\[ \t]*$/)
      inmap = 0
  }
  if (line ~ /HMB_ERRNO_MAP[ \t]*\([ \t]*HMB__ERRNO_ENUM[ \t]*\)/ && map != "") {
    out = ""
    rest = map
    entry = "X\\([ \t]*[A-Z0-9_]+[ \t]*,[ \t]*-?[0-9]+[ \t]*,[ \t]*\"([^\"\\\\]|\\\\.)*\"[ \t]*\\)"
    while (match(rest, entry)) {
      item = substr(rest, RSTART, RLENGTH)
      rest = substr(rest, RSTART + RLENGTH)
      name = item
      sub(/^X\([ \t]*/, "", name)
      sub(/[ \t]*,.*$/, "", name)
      value = item
      sub(/^X\([^,]*,[ \t]*/, "", value)
      sub(/[ \t]*,.*$/, "", value)
      msg = item
      sub(/^[^"]*"/, "", msg)
      sub(/"[ \t]*\)$/, "", msg)
      out = out "HMB_" name " = " value ", /**< " msg " */ "
    }
    if (out != "") {
      indent = line
      sub(/[^ \t].*$/, "", indent)
      print indent out
      next
    }
  }
  print
}
