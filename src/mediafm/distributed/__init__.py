"""Scale-out engines. `ray_engine` needs the optional Ray extra and is imported only when used
(`mediafm ingest --engine ray`); importing this package never imports Ray."""
