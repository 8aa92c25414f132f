# Project-wide INTERFACE targets, linked PRIVATE by every library and test.
add_library(subrelay_warnings INTERFACE)
add_library(subrelay::warnings ALIAS subrelay_warnings)
target_compile_options(subrelay_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion)
# GCC 12 reports Asio's coroutine frame allocator (its own operator new and
# delete pair) as mismatched: a known false positive in Boost's headers.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(subrelay_warnings INTERFACE -Wno-mismatched-new-delete)
endif()
if(SUBRELAY_WARNINGS_AS_ERRORS)
  target_compile_options(subrelay_warnings INTERFACE -Werror)
endif()

add_library(subrelay_sanitizers INTERFACE)
add_library(subrelay::sanitizers ALIAS subrelay_sanitizers)
if(SUBRELAY_FUZZ)
  # The libraries get libFuzzer's coverage instrumentation without its
  # main(); each target in tests/fuzz links -fsanitize=fuzzer itself.
  # -fno-sanitize=function: clang 14 cannot emit that check's prologue for
  # the split parts of a coroutine ("Cannot represent a difference across
  # sections" in auth/ and relay/).
  target_compile_options(subrelay_sanitizers INTERFACE -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function
                         -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(subrelay_sanitizers INTERFACE -fsanitize=address,undefined)
elseif(SUBRELAY_SANITIZERS)
  target_compile_options(subrelay_sanitizers INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(subrelay_sanitizers INTERFACE -fsanitize=address,undefined)
elseif(SUBRELAY_TSAN)
  # -Wno-tsan: GCC warns that TSan does not model atomic_thread_fence, which
  # Boost.Asio and OpenSSL headers use; the races it does model are what count.
  target_compile_options(subrelay_sanitizers INTERFACE -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  target_link_options(subrelay_sanitizers INTERFACE -fsanitize=thread)
endif()

# Common settings for one of the project's static libraries, whose sources
# are in `folder` (relative to the project). Each library exports only its
# own folder as include root: BUILD/include/NAME/FOLDER is a link to the
# folder, so `#include "FOLDER/x.hpp"` works for the library and whoever
# links it, and an include of a library that is not linked does not compile.
function(subrelay_library name folder)
  target_compile_features(${name} PUBLIC cxx_std_20)
  set(root ${PROJECT_BINARY_DIR}/include/${name})
  get_filename_component(parent ${root}/${folder} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${folder} ${root}/${folder} SYMBOLIC)
  target_include_directories(${name} PUBLIC ${root})
  target_link_libraries(${name} PRIVATE subrelay::warnings PUBLIC subrelay::sanitizers)
endfunction()
