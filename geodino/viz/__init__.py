"""Looking inside a backbone: CLS-to-patch attention maps, attention-mass masks and patch-similarity maps.

`geodino.viz.attention` holds the Python API (`read_input`, `attention_maps`, `write_attention`,
`visualize_attention`); `geodino.viz.commands` the `geodino viz attention` CLI. Imported on use.
"""

__all__: list[str] = []
