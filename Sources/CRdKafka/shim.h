#ifndef JADUGAR_CRDKAFKA_SHIM_H
#define JADUGAR_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#endif
