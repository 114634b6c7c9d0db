"""The probe catalog and the BPF programs msprof loads (see CATALOG.md)."""
