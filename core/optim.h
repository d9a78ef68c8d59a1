// Optimizers and gradient clipping.
#pragma once

#include "core/optim/adam.h"
#include "core/optim/clip.h"
#include "core/optim/optimizer.h"
#include "core/optim/schedule.h"
#include "core/optim/sgd.h"
