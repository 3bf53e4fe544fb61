# doxygen-filter.sed - lets Doxygen read the headers' plain C comments.
#
# The public headers document every declaration with ordinary /* ... */
# comments (the house style). Doxygen only reads /** ... */, so the `docs`
# target passes each header through this filter (INPUT_FILTER) instead of
# rewriting the headers:
#   - the comment that opens the file becomes the file's documentation;
#   - a comment on a line of its own documents the declaration below it;
#   - a comment after code on the same line documents that member.
# Nothing else changes, so line numbers in warnings match the real headers.
1s|^/\*\([^*]\)|/** @file\1|
1s|^/\*$|/** @file|
2,$s|^\([[:space:]]*\)/\*\([^*]\)|\1/**\2|
2,$s|^\([[:space:]]*\)/\*$|\1/**|
s|^\([[:space:]]*[^[:space:]/#][^/]*\)/\*[[:space:]]|\1/**< |
