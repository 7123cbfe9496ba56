/* SPDX-License-Identifier: MIT */
#include <brood/brood.h>
#include "internal/brd-private.h"

#define BRD_STR2(x) #x
#define BRD_STR(x) BRD_STR2(x)

BRD_EXPORT const char *brd_version(void)
{
        return BRD_STR(BRD_VERSION_MAJOR) "." BRD_STR(BRD_VERSION_MINOR) "." BRD_STR(BRD_VERSION_PATCH);
}
