/* HDF5 settings shared by the input (input.h) and the output (h5out.h). */
#ifndef BS_H5IO_H
#define BS_H5IO_H

/* Silences HDF5's own error stack printing: we report errors ourselves. */
void bs_h5_quiet(void);

#endif
