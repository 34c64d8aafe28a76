# proto: see the header comments of its files
