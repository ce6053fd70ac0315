#!/bin/sh
# check_size.sh SIZE_TOOL ELF FLASH_BYTES RAM_BYTES TARGET
#
# Prints how much flash and RAM an image uses and refuses (exit 1) one that
# does not fit the target's memories. Berkeley-format figures of `size -B`:
# text = code + constants, data = initialised data, bss = zeroed data and the
# stack reserve (section .stack, link.ld.in). Flash holds text and the image
# of data; RAM holds data and bss.
set -eu

if [ $# -ne 5 ]; then
    echo "usage: check_size.sh SIZE_TOOL ELF FLASH_BYTES RAM_BYTES TARGET" >&2
    exit 2
fi
size_tool=$1 elf=$2 flash_max=$3 ram_max=$4 target=$5

# Line 2 of `size -B` is: text data bss dec hex filename.
set -- $("$size_tool" -B "$elf" | sed -n 2p)
flash=$(($1 + $2))
ram=$(($2 + $3))

echo "edgecompile: $elf on $target uses $flash of $flash_max bytes of flash, $ram of $ram_max bytes of RAM"
status=0
if [ "$flash" -gt "$flash_max" ]; then
    echo "edgecompile: error: image too large for $target: needs $flash bytes of flash, has $flash_max" >&2
    status=1
fi
if [ "$ram" -gt "$ram_max" ]; then
    echo "edgecompile: error: image too large for $target: needs $ram bytes of RAM (stack reserve included), has $ram_max" >&2
    status=1
fi
exit $status
