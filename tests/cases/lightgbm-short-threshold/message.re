model\.txt: .*tree 0: threshold has 1 values, expected
