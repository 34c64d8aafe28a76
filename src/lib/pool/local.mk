# pool: see the header comments of its files
