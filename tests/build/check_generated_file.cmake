# Runs GENERATOR and fails unless its standard output equals the file EXPECTED.
execute_process(COMMAND ${GENERATOR} RESULT_VARIABLE rc OUTPUT_VARIABLE generated)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${GENERATOR} failed with status ${rc}")
endif()
file(READ ${EXPECTED} expected)
if(NOT generated STREQUAL expected)
  message(FATAL_ERROR "${EXPECTED} is out of date: regenerate it with ${GENERATOR} > ${EXPECTED}")
endif()
