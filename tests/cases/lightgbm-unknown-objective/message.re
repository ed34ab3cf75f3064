model\.txt: .*objective 'survival' is not supported
