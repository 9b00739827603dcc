//! Datasets: synthetic, bundled MNIST subset, MNIST/Fashion-MNIST IDX and CIFAR-10 binary loaders.
