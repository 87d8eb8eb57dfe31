// OpenBLAS's CBLAS interface plus its thread-count controls (not part of the CBLAS standard).
#include <cblas.h>
