"""Imports a package only the policy's packages.pip installs."""
import six

import airlock


@airlock.agent
def main(ctx: airlock.Context):
    return {"six": six.__version__}
