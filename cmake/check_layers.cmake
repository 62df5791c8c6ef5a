# The layering rule of src/ (docs/ARCHITECTURE.md, "Layers and folders"),
# checked two ways by `ctest -R layers`:
#  1. every quoted #include of every file under src/<layer>/ names a header
#     of include/, of the layer's own folder or of a folder the layer may
#     see; any other is an arrow the rule forbids, and is listed;
#  2. a stray include really fails to compile: the store's own include
#     path (the one its object library builds with) cannot reach
#     internal.h or engine.h, while it does reach ext.h and util.h.
# Run as: cmake -DSRC=<source dir> -DRULE=<layer:seen,seen;...>
#   -DCC=<compiler> -DSTORE_INCLUDES=<the store's include path> -P this
cmake_minimum_required(VERSION 3.18)

string(REPLACE "|" ";" RULE "${RULE}")
set(bad "")
set(nfiles 0)
foreach(entry ${RULE})
  string(REPLACE ":" ";" parts "${entry}")
  list(GET parts 0 layer)
  list(LENGTH parts n)
  set(dirs "${SRC}/include" "${SRC}/src/${layer}")
  if(n GREATER 1)
    list(GET parts 1 sees)
    string(REPLACE "," ";" sees "${sees}")
    foreach(d ${sees})
      list(APPEND dirs "${SRC}/src/${d}")
    endforeach()
  endif()
  file(GLOB files "${SRC}/src/${layer}/*.c" "${SRC}/src/${layer}/*.h")
  foreach(f ${files})
    math(EXPR nfiles "${nfiles} + 1")
    file(STRINGS "${f}" incs REGEX "^[ \t]*#[ \t]*include[ \t]+\"")
    foreach(line ${incs})
      string(REGEX REPLACE "^[^\"]*\"([^\"]+)\".*" "\\1" h "${line}")
      set(found "")
      foreach(d ${dirs})
        if(EXISTS "${d}/${h}")
          set(found "${d}")
          break()
        endif()
      endforeach()
      if(NOT found)
        file(GLOB_RECURSE owner RELATIVE "${SRC}" "${SRC}/src/*/${h}")
        file(RELATIVE_PATH rel "${SRC}" "${f}")
        list(APPEND bad "${rel} includes \"${h}\" (${owner}), which layer "
                        "'${layer}' may not see\n")
      endif()
    endforeach()
  endforeach()
endforeach()
if(nfiles LESS 20)
  message(FATAL_ERROR "found only ${nfiles} files under ${SRC}/src/*/")
endif()
if(bad)
  string(REPLACE ";" "" bad "${bad}")
  message(FATAL_ERROR "includes that break the layering rule:\n${bad}")
endif()
message(STATUS "${nfiles} files, every include within its layer's reach")

# 2. The compiler, with the store's own include path.
set(flags "")
string(REPLACE "|" ";" STORE_INCLUDES "${STORE_INCLUDES}")
foreach(d ${STORE_INCLUDES})
  list(APPEND flags "-I${d}")
endforeach()
set(tmp "${CMAKE_CURRENT_BINARY_DIR}/check_layers")
file(MAKE_DIRECTORY "${tmp}")
foreach(h ext.h util.h internal.h engine.h)
  file(WRITE "${tmp}/stray.c" "#include \"swapio.h\"\n#include \"${h}\"\n")
  execute_process(COMMAND ${CC} -D_GNU_SOURCE -fsyntax-only ${flags}
                          "${tmp}/stray.c"
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(h MATCHES "^(ext|util)\\.h$" AND NOT rc EQUAL 0)
    message(FATAL_ERROR "the store cannot include ${h}: the check is broken")
  elseif(h MATCHES "^(internal|engine)\\.h$" AND rc EQUAL 0)
    message(FATAL_ERROR "the store's include path reaches ${h}")
  endif()
endforeach()
message(STATUS "the store's include path stops internal.h and engine.h")
