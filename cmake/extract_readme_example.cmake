# cmake -DIN=README.md -DOUT=<file>.cpp -P extract_readme_example.cmake
# Writes the first ```cpp block of the README to OUT, so the API example on the
# front page is compiled and run by ctest (readme_example) exactly as printed.
cmake_minimum_required(VERSION 3.20)
file(READ ${IN} _text)
string(REGEX MATCH "```cpp\n(.*)" _m "${_text}")
if(NOT _m)
  message(FATAL_ERROR "${IN} holds no ```cpp block: the front page lost its API example")
endif()
string(FIND "${CMAKE_MATCH_1}" "```" _end)
string(SUBSTRING "${CMAKE_MATCH_1}" 0 ${_end} _code)
set(_old "")
if(EXISTS ${OUT})
  file(READ ${OUT} _old)
endif()
if(NOT _old STREQUAL _code)
  file(WRITE ${OUT} "${_code}")
endif()
