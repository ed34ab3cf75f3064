/* HDF5 settings; see h5io.h. */
#include "h5io.h"

#include <hdf5.h>

void bs_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
