/* fuzz.h: the libFuzzer entry points, declared for every target
 * (tests/fuzz/fuzz_NAME.c) and for replay.c. A target defines
 * LLVMFuzzerTestOneInput and may define LLVMFuzzerInitialize. */
#ifndef SQLFEED_FUZZ_H
#define SQLFEED_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
