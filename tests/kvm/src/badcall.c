/* A hostile guest: the payload (which on this PVM host runs at the shim's
   privilege) writes a malformed request into the call block and rings the
   doorbell itself. The VMM must refuse it with a protocol error, never act on it.
   argv[1]: "range" (a length past the block), "number" (an unknown call),
   "log" (a log line outside the block). And "flood": 300 log lines of 800,000
   bytes each (240 MB), which the VMM must keep to its byte cap and then exit
   normally. Not meant to run natively. */
#include <stdint.h>
#include <string.h>

#define BLOCK 0x400000010000ull   /* DIRECT_MAP_BASE + CALL_BLOCK_GPA */
#define DOORBELL 0x4000c0000000ull /* DIRECT_MAP_BASE + DOORBELL_GPA */

int main(int argc, char **argv) {
    volatile uint32_t *nr = (volatile uint32_t *)BLOCK;
    volatile uint64_t *args = (volatile uint64_t *)(BLOCK + 8);
    const char *what = argc > 1 ? argv[1] : "range";
    if (strcmp(what, "flood") == 0) {
        memset((void *)(BLOCK + 0x100), 'x', 800000); /* the data area */
        for (int i = 0; i < 300; i++) {
            *nr = 6;
            args[0] = 0;
            args[1] = 800000;
            *(volatile uint32_t *)DOORBELL = *nr;
        }
        return 0;
    }
    if (strcmp(what, "number") == 0) {
        *nr = 99;
    } else if (strcmp(what, "log") == 0) {
        *nr = 6;
        args[0] = 0x100000; /* past the data area (896 KiB block) */
        args[1] = 16;
    } else {
        *nr = 1;
        args[0] = 1;
        args[1] = 0;
        args[2] = 1 << 20;
    }
    *(volatile uint32_t *)DOORBELL = *nr;
    return 0;
}
