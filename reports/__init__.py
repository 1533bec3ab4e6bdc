"""Reports: tables, HTML, plots and the regression gate; they read only run directories."""
