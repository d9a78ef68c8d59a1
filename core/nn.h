// Neural-network building blocks: modules, layers, initialization.
#pragma once

#include "core/nn/init.h"
#include "core/nn/linear.h"
#include "core/nn/mlp.h"
#include "core/nn/module.h"
