/*
 * cents.c: money amounts as whole cents, for the aggregate triggers.
 *
 * The aggregates add up numeric amounts with two decimals.  Adding them as
 * numeric costs a detoasted copy, a conversion to the arithmetic form and
 * back, and a palloc per operation; most of the fold of a small statement
 * was that.  Here an amount is read straight out of its stored form into a
 * 64-bit count of cents, added as an integer, and made a numeric again
 * once, when it is written.  The result is the same number with the same
 * display scale (2) as the numeric arithmetic gives for such values; any
 * value that is not whole cents (a third decimal, NaN, infinity) or too
 * large makes the caller take the numeric path instead.
 *
 * The stored form of numeric is PostgreSQL's on-disk format, which
 * pg_upgrade keeps readable across major versions: a varlena whose first
 * 16-bit word says short or long header, sign, display scale and weight,
 * followed by base-10000 digits, the first one of weight "weight" (a digit
 * of weight w stands for digit x 10000^w).  Trailing zero digits are not
 * stored.
 */
#include "crm.h"

#include "common/int.h"
#include "utils/numeric.h"

#define CENTS_NBASE				10000
#define CENTS_SIGN_MASK			0xC000	/* of the first word */
#define CENTS_NEG				0x4000
#define CENTS_SHORT				0x8000
#define CENTS_SPECIAL			0xC000	/* NaN, +-Infinity */
#define CENTS_SHORT_SIGN		0x2000
#define CENTS_SHORT_DSCALE_MASK	0x1F80
#define CENTS_SHORT_DSCALE_SHIFT 7
#define CENTS_SHORT_WEIGHT_SIGN	0x0040
#define CENTS_SHORT_WEIGHT_MASK	0x003F
#define CENTS_LONG_DSCALE_MASK	0x3FFF

/*
 * The value of a numeric datum in cents; false when it is not a whole
 * number of cents with at most two decimals shown, or does not fit.
 */
bool
crm_numeric_cents(Datum value, int64 *cents)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(value);
	const char *p;
	Size		len;
	uint16		header;
	int			weight;
	int			dscale;
	bool		negative;
	int64		result = 0;

	if (VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v))
		return false;			/* out of line or compressed: not an amount */
	p = VARDATA_ANY(v);
	len = VARSIZE_ANY_EXHDR(v);
	if (len < sizeof(uint16))
		return false;
	memcpy(&header, p, sizeof(uint16));
	p += sizeof(uint16);
	len -= sizeof(uint16);
	switch (header & CENTS_SIGN_MASK)
	{
		case CENTS_SPECIAL:
			return false;
		case CENTS_SHORT:
			negative = (header & CENTS_SHORT_SIGN) != 0;
			dscale = (header & CENTS_SHORT_DSCALE_MASK) >> CENTS_SHORT_DSCALE_SHIFT;
			weight = (header & CENTS_SHORT_WEIGHT_MASK) |
				((header & CENTS_SHORT_WEIGHT_SIGN) ? ~CENTS_SHORT_WEIGHT_MASK : 0);
			break;
		default:
			{
				int16		w;

				if (len < sizeof(int16))
					return false;
				negative = (header & CENTS_SIGN_MASK) == CENTS_NEG;
				dscale = header & CENTS_LONG_DSCALE_MASK;
				memcpy(&w, p, sizeof(int16));
				weight = w;
				p += sizeof(int16);
				len -= sizeof(int16);
			}
	}
	if (dscale > 2)
		return false;			/* shown with more decimals: keep it numeric */
	for (Size i = 0; i < len / sizeof(int16); i++, weight--)
	{
		int16		digit;
		int64		part;

		memcpy(&digit, p + i * sizeof(int16), sizeof(int16));
		if (digit < 0 || digit >= CENTS_NBASE)
			return false;
		if (digit == 0)
			continue;
		if (weight < -1)
			return false;		/* below a cent */
		if (weight == -1)
		{
			if (digit % 100 != 0)
				return false;
			part = digit / 100;
		}
		else
		{
			/* digit x 10000^weight x 100, refused before it could overflow */
			part = digit * (int64) 100;
			for (int w = 0; w < weight; w++)
				if (pg_mul_s64_overflow(part, CENTS_NBASE, &part))
					return false;
		}
		if (pg_add_s64_overflow(result, part, &result))
			return false;
	}
	*cents = negative ? -result : result;
	return true;
}

/*
 * cents as a numeric with two decimals shown, in the form numeric's own
 * arithmetic makes (short header, no leading or trailing zero digits; zero
 * has no digits and weight 0), which is what int64_div_fast_to_numeric(cents,
 * 2) returns too, at a sixth of the cost.
 */
Datum
crm_cents_numeric(int64 cents)
{
	uint64		magnitude = cents < 0 ? -(uint64) cents : (uint64) cents;
	uint64		units = magnitude / 100;
	int16		digits[8];		/* most significant first */
	int16		reversed[8];
	int			nunits = 0;
	int			ndigits = 0;
	int			weight;
	uint16		header;
	struct varlena *result;
	Size		size;

	while (units > 0)
	{
		reversed[nunits++] = (int16) (units % CENTS_NBASE);
		units /= CENTS_NBASE;
	}
	for (int i = nunits - 1; i >= 0; i--)
		digits[ndigits++] = reversed[i];
	digits[ndigits++] = (int16) ((magnitude % 100) * 100);	/* weight -1 */
	weight = nunits - 1;
	/* strip leading zeros (only when there are no units) and trailing ones */
	if (nunits == 0)
	{
		weight = -1;
		if (digits[0] == 0)
			ndigits = 0;
	}
	while (ndigits > 0 && digits[ndigits - 1] == 0)
		ndigits--;
	if (ndigits == 0)
		weight = 0;

	header = CENTS_SHORT | (2 << CENTS_SHORT_DSCALE_SHIFT) |
		(weight < 0 ? CENTS_SHORT_WEIGHT_SIGN : 0) | (weight & CENTS_SHORT_WEIGHT_MASK);
	if (cents < 0)
		header |= CENTS_SHORT_SIGN;
	size = VARHDRSZ + sizeof(uint16) + ndigits * sizeof(int16);
	result = (struct varlena *) palloc(size);
	SET_VARSIZE(result, size);
	memcpy(VARDATA(result), &header, sizeof(uint16));
	memcpy(VARDATA(result) + sizeof(uint16), digits, ndigits * sizeof(int16));
#ifdef USE_ASSERT_CHECKING
	{
		struct varlena *check = (struct varlena *) int64_div_fast_to_numeric(cents, 2);

		Assert(VARSIZE(check) == size && memcmp(check, result, size) == 0);
		pfree(check);
	}
#endif
	return PointerGetDatum(result);
}

/*
 * round(amount x probability / 100, 2) in cents, with amount in cents and
 * probability in hundredths of a percent; false when numeric arithmetic
 * might round it otherwise.  numeric multiplies exactly, then divides by 100
 * at a result scale of 16 - 4 x (the quotient's estimated weight in
 * base-10000 digits), at least.  While amount x probability (in currency
 * units and percent) is below 10^12, that weight is at most 2 and the scale
 * at least 8, and the exact quotient has at most 6 decimals: the division is
 * exact and both round it half away from zero.  In these units the bound is
 * |amount x probability| < 10^16.  (Above it numeric may round to 4
 * decimals before rounding to 2, which test/sql/aggregate_amounts.sql shows.)
 */
bool
crm_weighted_cents(int64 amount, int64 probability, int64 *weighted)
{
	int64		product;
	int64		quotient;
	int64		remainder;

	if (pg_mul_s64_overflow(amount, probability, &product) ||
		product >= INT64CONST(10000000000000000) || product <= -INT64CONST(10000000000000000))
		return false;
	quotient = product / 10000;
	remainder = product % 10000;
	if (remainder >= 5000)
		quotient++;
	else if (remainder <= -5000)
		quotient--;
	*weighted = quotient;
	return true;
}
