// Every op of the engine.
#pragma once

#include "core/ops/activation.h"
#include "core/ops/contractive.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/loss.h"
#include "core/ops/noise.h"
#include "core/ops/reduce.h"
#include "core/ops/shape_ops.h"
#include "core/ops/sparsity.h"
#include "core/ops/vae.h"
