"""dicomnet's batteries: tools built on the library, outside the kernel and the plugins.

* :mod:`dicomnet.contrib.cli`: the ``dicomnet`` command line (``dicomnet echo``...),
  documented in docs/cli.md.
"""
