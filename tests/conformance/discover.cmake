# Included by ctest (through the generated conformance_tests.cmake) each time it reads the test
# list: asks cbench-server for its models and registers conformance.py once per model and variant.
# If --list fails, registers one failing test, conformance.list, that repeats the failure.
#
# Inputs (set by the wrapper): CBENCH_SERVER, CBENCH_CONFORMANCE_PYTHON, CBENCH_CONFORMANCE_SUITE,
# CBENCH_CONFORMANCE_THREADS, CBENCH_CONFORMANCE_VARIANTS, CBENCH_CONFORMANCE_GATE_ARGS,
# CBENCH_CONFORMANCE_TIMEOUT_S.

execute_process(COMMAND "${CBENCH_SERVER}" --list
                RESULT_VARIABLE list_status OUTPUT_VARIABLE list_out ERROR_VARIABLE list_err
                TIMEOUT 30)

# --list prints one model a line: NAME <tab> TRAITS <tab> SUMMARY, TRAITS being "-" or a
# comma-separated list (backends/server/model.h). Instruments (the "instrument" trait, e.g. floor:
# no parsing, answers anything) are not HTTP servers to hold to the suite, so they are left out.
set(models "")
string(REPLACE ";" "," list_out "${list_out}")
string(REPLACE "\n" ";" list_lines "${list_out}")
foreach(line IN LISTS list_lines)
  if(line MATCHES "^([A-Za-z0-9._+-]+)\t([a-z,-]+)\t")
    set(name "${CMAKE_MATCH_1}")
    string(REPLACE "," ";" traits "${CMAKE_MATCH_2}")
    list(FIND traits "instrument" index)  # not IN_LIST: ctest reads this without a policy version
    if(index LESS 0)
      list(APPEND models "${name}")
    endif()
  endif()
endforeach()

if(NOT list_status EQUAL 0 OR NOT models)
  add_test(conformance.list "${CBENCH_CONFORMANCE_PYTHON}" "${CBENCH_CONFORMANCE_SUITE}"
           --server "${CBENCH_SERVER}" --check-list)
  set_tests_properties(conformance.list PROPERTIES TIMEOUT 60 LABELS conformance)
  return()
endif()

function(cbench_conformance_test name model threads)
  add_test(${name} "${CBENCH_CONFORMANCE_PYTHON}" "${CBENCH_CONFORMANCE_SUITE}"
           --server "${CBENCH_SERVER}" --model "${model}" --threads ${threads} ${ARGN})
  # 77: the model's start-up probe found this kernel lacking (io-uring under io_uring_disabled=2
  # or a seccomp filter): reported as skipped, with the server's line in the output.
  set_tests_properties(${name} PROPERTIES TIMEOUT ${CBENCH_CONFORMANCE_TIMEOUT_S} LABELS conformance
                       SKIP_RETURN_CODE 77)
endfunction()

# The server arguments a model's per-thread-count runs get ("model|arguments"; most get none).
function(cbench_gate_args model out)
  set(args "")
  foreach(entry IN LISTS CBENCH_CONFORMANCE_GATE_ARGS)
    string(REPLACE "|" ";" fields "${entry}")
    list(GET fields 0 name)
    if(name STREQUAL model)
      list(GET fields 1 args)
    endif()
  endforeach()
  set(${out} "${args}" PARENT_SCOPE)
endfunction()

foreach(model IN LISTS models)
  cbench_gate_args(${model} gate_args)
  foreach(threads IN LISTS CBENCH_CONFORMANCE_THREADS)
    if(gate_args)
      cbench_conformance_test(conformance.${model}.threads${threads} ${model} ${threads} "--extra=${gate_args}")
    else()
      cbench_conformance_test(conformance.${model}.threads${threads} ${model} ${threads})
    endif()
  endforeach()
endforeach()

foreach(variant IN LISTS CBENCH_CONFORMANCE_VARIANTS)
  string(REPLACE "|" ";" fields "${variant}")
  list(GET fields 0 model)
  list(GET fields 1 label)
  list(GET fields 2 threads)
  list(GET fields 3 server_args)
  list(FIND models "${model}" index)  # not IN_LIST: ctest reads this without a policy version
  if(index GREATER_EQUAL 0)
    cbench_conformance_test(conformance.${model}.threads${threads}.${label} ${model} ${threads}
                            "--extra=${server_args}")
  endif()
endforeach()

# The refusal path of a model that probes the kernel: started under a seccomp filter that fails
# io_uring_setup, io-uring must exit 77 with one line (and the suite report it as SKIPPED).
list(FIND models "io-uring" index)
if(index GREATER_EQUAL 0)
  add_test(conformance.io-uring.refused "${CBENCH_CONFORMANCE_PYTHON}" "${CBENCH_CONFORMANCE_SUITE}"
           --server "${CBENCH_SERVER}" --model io-uring --deny-io-uring --expect-skip)
  set_tests_properties(conformance.io-uring.refused PROPERTIES TIMEOUT 60 LABELS conformance)
endif()
