model\.txt: .*tree 0: node 0 has invalid left child 0
