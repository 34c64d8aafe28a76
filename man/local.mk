# man pages (mdoc)
