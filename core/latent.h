// The whole engine in one include: tensors, autograd, ops, nn, optimizers, random numbers.
#pragma once

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/data.h"
#include "core/device.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/nn.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/random.h"
#include "core/tensor.h"
