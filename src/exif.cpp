// exif -- EXIF (parsed by libexif) into a finished TIFF (updated in place by libtiff).
#include "superstack/exif.hpp"

#include "superstack/error.hpp"

#include <libexif/exif-data.h>
#include <tiffio.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace superstack {

namespace {

struct ExifDataFree {
	void operator()(ExifData *d) const { exif_data_unref(d); }
};
struct TiffClose {
	void operator()(TIFF *t) const { TIFFClose(t); }
};

// IFD0 strings that are baseline TIFF tags too.
constexpr ExifTag kIfd0Strings[] = {EXIF_TAG_MAKE, EXIF_TAG_MODEL, EXIF_TAG_SOFTWARE, EXIF_TAG_DATE_TIME,
	EXIF_TAG_ARTIST, EXIF_TAG_COPYRIGHT, EXIF_TAG_IMAGE_DESCRIPTION};

std::string ascii_of(const ExifEntry *e)
{
	std::string s(reinterpret_cast<const char *>(e->data), e->size);
	s.erase(std::find(s.begin(), s.end(), '\0'), s.end());
	return s;
}

// The entry's components as doubles (numbers) -- rationals divided out.
std::vector<double> numbers_of(const ExifEntry *e, ExifByteOrder order)
{
	std::vector<double> v;
	const unsigned size = exif_format_get_size(e->format);
	for (unsigned i = 0; i < e->components && (i + 1) * size <= e->size; i++) {
		const unsigned char *p = e->data + i * size;
		switch (e->format) {
		case EXIF_FORMAT_BYTE:
		case EXIF_FORMAT_UNDEFINED: v.push_back(p[0]); break;
		case EXIF_FORMAT_SBYTE: v.push_back(static_cast<signed char>(p[0])); break;
		case EXIF_FORMAT_SHORT: v.push_back(exif_get_short(p, order)); break;
		case EXIF_FORMAT_SSHORT: v.push_back(exif_get_sshort(p, order)); break;
		case EXIF_FORMAT_LONG: v.push_back(exif_get_long(p, order)); break;
		case EXIF_FORMAT_SLONG: v.push_back(exif_get_slong(p, order)); break;
		case EXIF_FORMAT_RATIONAL: {
			const ExifRational r = exif_get_rational(p, order);
			v.push_back(r.denominator ? static_cast<double>(r.numerator) / r.denominator : 0.0);
			break;
		}
		case EXIF_FORMAT_SRATIONAL: {
			const ExifSRational r = exif_get_srational(p, order);
			v.push_back(r.denominator ? static_cast<double>(r.numerator) / r.denominator : 0.0);
			break;
		}
		default: return {};
		}
	}
	return v;
}

// Sets one EXIF entry on the current (EXIF) directory, typed the way libtiff stores that tag.
bool set_entry(TIFF *t, const ExifEntry *e, ExifByteOrder order)
{
	const TIFFField *field = TIFFFindField(t, e->tag, TIFF_ANY);
	// Left out: the MakerNote (offsets into the original file), the pixel dimensions (the output's are
	// its own) and pointers to further directories.
	if (!field || e->tag == EXIF_TAG_MAKER_NOTE || e->tag == EXIF_TAG_PIXEL_X_DIMENSION ||
		e->tag == EXIF_TAG_PIXEL_Y_DIMENSION || e->tag == EXIF_TAG_INTEROPERABILITY_IFD_POINTER)
		return false;
	if (TIFFFieldDataType(field) == TIFF_ASCII) {
		if (e->format != EXIF_FORMAT_ASCII)
			return false;
		return TIFFSetField(t, e->tag, ascii_of(e).c_str()) == 1;
	}
	const std::vector<double> v = numbers_of(e, order);
	if (v.empty())
		return false;
	const int storage = TIFFFieldSetGetSize(field);
	const TIFFDataType type = TIFFFieldDataType(field);
	const bool real = type == TIFF_RATIONAL || type == TIFF_SRATIONAL || type == TIFF_FLOAT || type == TIFF_DOUBLE;
	const bool is_signed = type == TIFF_SSHORT || type == TIFF_SLONG || type == TIFF_SBYTE;
	// Packed in libtiff's storage type.
	std::vector<unsigned char> packed(v.size() * static_cast<std::size_t>(storage));
	for (std::size_t i = 0; i < v.size(); i++) {
		unsigned char *p = packed.data() + i * storage;
		if (storage == 8 && real) { const double x = v[i]; std::memcpy(p, &x, 8); }
		else if (storage == 4 && real) { const float x = static_cast<float>(v[i]); std::memcpy(p, &x, 4); }
		else if (storage == 4 && is_signed) { const int32_t x = static_cast<int32_t>(v[i]); std::memcpy(p, &x, 4); }
		else if (storage == 4) { const uint32_t x = static_cast<uint32_t>(v[i]); std::memcpy(p, &x, 4); }
		else if (storage == 2 && is_signed) { const int16_t x = static_cast<int16_t>(v[i]); std::memcpy(p, &x, 2); }
		else if (storage == 2) { const uint16_t x = static_cast<uint16_t>(v[i]); std::memcpy(p, &x, 2); }
		else if (storage == 1) { p[0] = static_cast<unsigned char>(static_cast<int>(v[i])); }
		else return false;
	}
	if (TIFFFieldPassCount(field)) {
		const int count_size = TIFFFieldSetGetCountSize(field);
		if (count_size == 4)
			return TIFFSetField(t, e->tag, static_cast<uint32_t>(v.size()), packed.data()) == 1;
		return TIFFSetField(t, e->tag, static_cast<int>(v.size()), packed.data()) == 1;
	}
	const int count = TIFFFieldReadCount(field);
	if (count > 1) { // a fixed-size array, passed by pointer
		if (static_cast<int>(v.size()) < count)
			return false;
		return TIFFSetField(t, e->tag, packed.data()) == 1;
	}
	// A single value, passed by value (varargs promote float to double, shorts to int).
	if (real)
		return TIFFSetField(t, e->tag, v[0]) == 1;
	if (storage == 4)
		return TIFFSetField(t, e->tag, is_signed ? static_cast<int32_t>(v[0]) : static_cast<uint32_t>(v[0])) == 1;
	return TIFFSetField(t, e->tag, static_cast<int>(v[0])) == 1;
}

} // namespace

int write_exif_to_tiff(const std::filesystem::path &tiff, const void *blob, std::size_t size)
{
	std::unique_ptr<ExifData, ExifDataFree> exif(
		exif_data_new_from_data(static_cast<const unsigned char *>(blob), static_cast<unsigned>(size)));
	if (!exif)
		return 0;
	const ExifByteOrder order = exif_data_get_byte_order(exif.get());
	ExifContent *ifd0 = exif->ifd[EXIF_IFD_0];
	const ExifContent *sub = exif->ifd[EXIF_IFD_EXIF];
	if ((!ifd0 || ifd0->count == 0) && (!sub || sub->count == 0))
		return 0;

	// libtiff reports through handlers that print; its failures reach us as return values.
	TIFFSetWarningHandler(nullptr);
	std::unique_ptr<TIFF, TiffClose> t(TIFFOpen(tiff.c_str(), "r+"));
	if (!t)
		throw_error(ExitCode::processing, "{}: cannot reopen to add EXIF", tiff.string());
	int written = 0;
	uint64_t exif_offset = 0;
	if (sub && sub->count > 0) {
		if (TIFFCreateEXIFDirectory(t.get()) != 0)
			throw_error(ExitCode::processing, "{}: cannot create the EXIF directory", tiff.string());
		for (unsigned i = 0; i < sub->count; i++)
			written += set_entry(t.get(), sub->entries[i], order);
		if (!TIFFWriteCustomDirectory(t.get(), &exif_offset))
			throw_error(ExitCode::processing, "{}: cannot write the EXIF directory", tiff.string());
	}
	if (!TIFFSetDirectory(t.get(), 0))
		throw_error(ExitCode::processing, "{}: cannot return to the image directory", tiff.string());
	if (ifd0)
		for (ExifTag tag : kIfd0Strings)
			if (const ExifEntry *e = exif_content_get_entry(ifd0, tag); e && e->format == EXIF_FORMAT_ASCII)
				TIFFSetField(t.get(), tag, ascii_of(e).c_str());
	if (exif_offset)
		TIFFSetField(t.get(), TIFFTAG_EXIFIFD, exif_offset);
	if (!TIFFRewriteDirectory(t.get()))
		throw_error(ExitCode::processing, "{}: cannot rewrite the image directory", tiff.string());
	return written;
}

} // namespace superstack
