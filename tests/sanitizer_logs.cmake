# cmake -P script of the sanitizer build: MODE=clear empties DIR before the suite; MODE=check,
# after it, fails and prints every AddressSanitizer / UBSan / LeakSanitizer report found in DIR.
if(MODE STREQUAL "clear")
  file(REMOVE_RECURSE ${DIR})
  file(MAKE_DIRECTORY ${DIR})
  return()
endif()
file(GLOB reports ${DIR}/*)
set(count 0)
foreach(report IN LISTS reports)
  file(READ ${report} text)
  # LeakSanitizer's own stop-the-world tracer sometimes crashes at exit while other threads
  # (Open MPI's progress threads) come and go (google/sanitizers#1353): that process's leak
  # check did not run, nothing was found. Shown, not counted.
  if(text MATCHES "LeakSanitizer has encountered a fatal error" AND
     NOT text MATCHES "ERROR: (AddressSanitizer|LeakSanitizer: detected)|runtime error")
    message(WARNING "the leak check of one process did not run (tracer crash):\n${text}")
    continue()
  endif()
  math(EXPR count "${count} + 1")
  message("==== ${report}\n${text}")
endforeach()
if(count EQUAL 0)
  message(STATUS "no sanitizer reports in ${DIR}")
  return()
endif()
message(FATAL_ERROR "${count} sanitizer report(s) in ${DIR}")
