/* HDF5 settings shared by the input (input.h) and the output (h5out.h). */
#ifndef BS_H5IO_H
#define BS_H5IO_H

#include <hdf5.h>

/* Silences HDF5's own error stack printing: we report errors ourselves. */
void bs_h5_quiet(void);

/* The HDF5 type of a kept column's values (bs_keep_type, keep.h): in files
 * (little-endian) or in memory (native). Not for text. */
hid_t bs_h5_keep_type(int keep_type, int native);

#endif
