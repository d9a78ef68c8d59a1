// latent::Error and latent::check: see kernels/error.h, where they live so that every layer
// throws the same type.
#pragma once

#include "kernels/error.h"
