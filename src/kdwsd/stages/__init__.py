"""Stage functions: one per Snakemake rule, mirroring ``workflow/rules/<stage>.smk``.

Each rule's script is one call, ``run_rule(snakemake, <stage function>)``. The rule's named ``input``,
``output``, ``params`` and ``wildcards`` are passed to the stage function as keyword arguments of the same
names (``threads`` and the ``compute`` speed knobs too, when the function takes them), so a knob can be
followed from ``config/`` to the code that uses it in four hops: config key -> rule ``params`` -> stage
function argument -> library module. Stage functions are plain Python: call them from a notebook with the
same keywords.

Modules: :mod:`~kdwsd.stages.dataset`, :mod:`~kdwsd.stages.proposals`, :mod:`~kdwsd.stages.teacher`,
:mod:`~kdwsd.stages.cache`, :mod:`~kdwsd.stages.student`, :mod:`~kdwsd.stages.evaluate`,
:mod:`~kdwsd.stages.report`.
"""

from kdwsd.stages.runner import run_rule

__all__ = ["run_rule"]
