"""Data stage: read sources into one tidy table (``sources``), check quality (``qc``),
record provenance (``lineage``). Import from the submodules; this package stays light
so a fully cached run does not load pandas."""
