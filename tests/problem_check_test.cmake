# cmake -P script: the compile-time check of a user's problem class (BILEVEL_PROBLEM).
# Compiles compile_fail/missing_oracle.cc once complete, which must succeed, then once without
# each member of bilevel::Problem in turn, which must FAIL with an error that names that member
# ("must override <member>(") and no other.
#
#   cmake -DCXX=<compiler> "-DFLAGS=<-std=c++17;...>" "-DINCLUDES=<dir;...>" -DSOURCE=<file>
#         -P problem_check_test.cmake
foreach(var CXX FLAGS INCLUDES SOURCE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "problem_check_test: -D${var}=... is required")
  endif()
endforeach()

set(members Name DimOuter DimInner NumSamples LocalShard ValueF ValueG GradXF GradYF GradYG
            GradXG HessianVec JacobianVec)
set(command ${CXX} ${FLAGS} -fsyntax-only)
foreach(dir IN LISTS INCLUDES)
  list(APPEND command -I${dir})
endforeach()

execute_process(COMMAND ${command} ${SOURCE} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the complete problem class does not compile:\n${out}")
endif()
message(STATUS "complete class: compiles")

set(failures 0)
foreach(member IN LISTS members)
  execute_process(COMMAND ${command} -DBILEVEL_OMIT_${member} ${SOURCE}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  set(named "must override ${member}(")
  string(FIND "${out}" "${named}" at)
  # The first error of the compilation must be ours.
  string(REGEX MATCH "error: [^\n]*" first "${out}")
  string(FIND "${first}" "user::MyProblem ${named}" first_at)
  set(others "")
  foreach(other IN LISTS members)
    if(NOT other STREQUAL member)
      string(FIND "${out}" "must override ${other}(" other_at)
      if(other_at GREATER -1)
        list(APPEND others ${other})
      endif()
    endif()
  endforeach()
  if(rc EQUAL 0)
    message(SEND_ERROR "without ${member}: compiled, but must fail")
    math(EXPR failures "${failures} + 1")
  elseif(at EQUAL -1 OR first_at EQUAL -1)
    message(SEND_ERROR "without ${member}: failed, but the first error does not say "
                       "'user::MyProblem ${named}':\n${out}")
    math(EXPR failures "${failures} + 1")
  elseif(others)
    message(SEND_ERROR "without ${member}: the errors also name ${others}:\n${out}")
    math(EXPR failures "${failures} + 1")
  else()
    message(STATUS "without ${member}: fails with '${first}'")
  endif()
endforeach()
if(failures GREATER 0)
  message(FATAL_ERROR "${failures} of the compile-time checks misbehaved")
endif()
