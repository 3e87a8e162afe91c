/* launch.c: placeholder; replaced by the launch module. */
#include "launch_api.h"

int lg_launch_api_version(void)
{
    return 0;
}
