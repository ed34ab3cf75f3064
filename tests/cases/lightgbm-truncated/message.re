model\.txt: .*truncated
