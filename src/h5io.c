/* HDF5 settings; see h5io.h. */
#include "h5io.h"

#include <hdf5.h>

#include "keep.h"

void bs_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

hid_t bs_h5_keep_type(int keep_type, int native) {
  switch ((bs_keep_type)keep_type) {
    case BS_KEEP_I8:
      return native ? H5T_NATIVE_INT8 : H5T_STD_I8LE;
    case BS_KEEP_I16:
      return native ? H5T_NATIVE_INT16 : H5T_STD_I16LE;
    case BS_KEEP_I32:
      return native ? H5T_NATIVE_INT32 : H5T_STD_I32LE;
    case BS_KEEP_I64:
      return native ? H5T_NATIVE_INT64 : H5T_STD_I64LE;
    case BS_KEEP_U8:
      return native ? H5T_NATIVE_UINT8 : H5T_STD_U8LE;
    case BS_KEEP_U16:
      return native ? H5T_NATIVE_UINT16 : H5T_STD_U16LE;
    case BS_KEEP_U32:
      return native ? H5T_NATIVE_UINT32 : H5T_STD_U32LE;
    case BS_KEEP_U64:
      return native ? H5T_NATIVE_UINT64 : H5T_STD_U64LE;
    case BS_KEEP_F32:
      return native ? H5T_NATIVE_FLOAT : H5T_IEEE_F32LE;
    default:
      return native ? H5T_NATIVE_DOUBLE : H5T_IEEE_F64LE;
  }
}
