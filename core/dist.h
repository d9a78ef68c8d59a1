// Data parallelism across processes: the launch, the communicators and their collectives.
#pragma once

#include "core/dist/dist.h"
