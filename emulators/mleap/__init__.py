"""MLeap classic serving stand-in: the real protocol over HTTP, scoring real MLeap JSON bundles."""

from emulators.mleap.bundle import BundleError, load_bundle, write_linear_regression_bundle
from emulators.mleap.server import MleapServingEmulator

__all__ = ["BundleError", "MleapServingEmulator", "load_bundle", "write_linear_regression_bundle"]
