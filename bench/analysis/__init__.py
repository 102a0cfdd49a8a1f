"""Reading and explaining results: the row schema, loading run tables, the per-cell table and its renderers,
the terminal summary, the HTML report and its figures, the generator cross-check."""
