/* supervise.c: placeholder; replaced by the supervise module. */
#include "supervise_api.h"

int lg_supervise_api_version(void)
{
    return 0;
}
