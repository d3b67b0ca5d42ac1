#ifndef JADUGAR_CHIREDIS_SHIM_H
#define JADUGAR_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
