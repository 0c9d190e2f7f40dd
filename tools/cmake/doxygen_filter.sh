#!/bin/sh
# Doxygen INPUT_FILTER for the public headers, which keep Google-style // comments: the comment
# that opens a file becomes its \file documentation, a comment line before a declaration a ///
# comment, and a comment after a member on the same line (with its aligned continuation lines)
# a ///< comment. Comment lines indented by 3 or more spaces (formulas, tables, code) become
# Markdown code blocks. Prints the filtered file on stdout.
exec awk '
  function col(s) { return index(s, "//") }
  function doc(s) { return s ~ /\/\/   / ? "///  " : "///" }
  NR == 1 && /^\/\// { print "/// \\file"; head = 1 }
  head && /^\/\// { sub(/^\/\//, doc($0)); print; next }
  { head = 0 }
  /^[ \t]*\/\// {
    if (trailing && col($0) == trailing) { sub(/\/\//, "///<"); print; next }
    trailing = 0
    sub(/\/\//, doc($0)); print; next
  }
  /[;{,][ \t]*\/\/ / {
    trailing = col($0)
    sub(/\/\/ /, "///< "); print; next
  }
  { trailing = 0; print }
' "$1"
