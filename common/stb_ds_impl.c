// The one translation unit that compiles stb_ds's implementation (from the system's stb
// package; see scripts/setup-deps.sh). Everything else includes <stb_ds.h> for declarations.
#define STB_DS_IMPLEMENTATION
#include <stb_ds.h>
