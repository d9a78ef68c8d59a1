// Data loading and mini-batches: IDX, .npy and CSV files, Fashion-MNIST, Batches.
#pragma once

#include "core/data/dataset.h"
