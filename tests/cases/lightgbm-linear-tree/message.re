model\.txt: .*tree 0 is a linear tree
