"""Where registration requests come from: CSV files, the drop folder, the JSON intake."""
